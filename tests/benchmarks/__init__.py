"""Performance harness, run by ``make bench`` (``python -m tests.benchmarks``), never by pytest.

Each module measures figures against a baseline taken in the same run on the same data, and
reports them as ratios: absolute times vary between machines, ratios between designs do not.
"""
