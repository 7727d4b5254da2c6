"""REDCap configurations and survey records (filled in when the REDCap intake lands)."""
