"""``ponder report``: benchmark JSON in, a Markdown report with PNG plots out.

Each benchmark under ``bench/`` prints one JSON object last; a *section*
(``sections.py``) names the benchmark, checks the keys it needs, draws one
plot from that JSON alone and writes a short table. ``runner.py`` runs the
benchmarks (a quick set or the full one) and saves their JSON; ``build.py``
reads a folder of saved JSON and writes ``report.md`` beside the PNGs.
Nothing is imported here, so the CLI loads none of it until ``ponder report`` runs.
"""
