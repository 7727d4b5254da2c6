"""Render a study README from Markdown to HTML that is safe to put in a page.

Markdown passes raw HTML through, so the output of `markdown` is cleaned by `nh3` (a binding of
the Rust ammonia sanitiser) with an allow-list: only the tags and attributes below survive,
links may only use http, https or mailto (or be relative), and every link gets
rel="noopener noreferrer". Scripts, styles, iframes, event-handler attributes and images are
removed. Images are left out because the page's Content Security Policy would block images
from other hosts anyway.
"""

import markdown
import nh3

# The maximum README length, in characters. A README is a page of notes and links, not a
# document store; longer text is better kept in a file the README links to.
README_MAX_CHARS = 20_000

MARKDOWN_EXTENSIONS = ["fenced_code", "tables", "sane_lists"]

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "li",
    "ol",
    "p",
    "pre",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def render_readme(text):
    """Return the README's Markdown `text` as sanitised HTML (a str that is safe to mark safe)."""
    html = markdown.markdown(text, extensions=MARKDOWN_EXTENSIONS, output_format="html")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        # The text of <script> and <style> elements is dropped with the element, so no code
        # shows up as page text.
        clean_content_tags={"script", "style"},
        strip_comments=True,
    )
