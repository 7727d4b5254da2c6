"""Write a deterministic synthetic dataset for benchmarks."""

from django.core.management.base import BaseCommand, CommandError

from qc import benchmark_data
from qcdash.progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Write the synthetic studies of a benchmark profile with bulk inserts: small (200 "
        "timepoints), large (5,000), stretch (50,000) or lab (30 studies, about 15,000 sessions)."
    )

    def add_arguments(self, parser):
        parser.add_argument("profile", choices=sorted(benchmark_data.PROFILES))
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")

    def handle(self, *args, profile, **options):
        total = sum(shape.timepoints for shape in benchmark_data.PROFILES[profile])
        bar = ProgressBar(self.stdout, total, label=f"Seeding {profile}", unit="timepoints")
        done_by_study = {}

        def progress(nickname, done, _study_total):
            done_by_study[nickname] = done
            bar.update(sum(done_by_study.values()))

        try:
            result = benchmark_data.seed(profile, seed_value=options["seed"], progress=progress)
        except benchmark_data.SeedError as error:
            raise CommandError(str(error)) from error
        bar.finish()
        self.stdout.write(f"Seeded {profile}: {result.summary()}")
