"""The load scenario (``make load``): buyers, distributors and staff against gunicorn, driven by
Locust, with the money checked afterwards. ``python -m tests.load --help`` says how to run it."""
