"""The server's routes, one router per concern: model, predict, stream, page."""

from islr.serving.routers import model, page, predict, stream

__all__ = ["model", "page", "predict", "stream"]
