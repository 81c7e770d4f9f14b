"""Serving: the FastAPI app (:mod:`islr.serving.app`, ``create_app``) and the web page's static
files (``static/``). Importing this package does not import FastAPI."""
