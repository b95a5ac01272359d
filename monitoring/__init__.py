"""Production monitoring: prediction-log reading, Evidently drift reports, a traffic simulator.

Never imported by the service: Evidently, pandas and their kin stay out of the serving image.
Entry point: ``python -m monitoring --help``.
"""
