"""The server's routes, one router per concern: model, predict, stream, vocabulary, page."""

from islr.serving.routers import model, page, predict, stream, vocabulary

__all__ = ["model", "page", "predict", "stream", "vocabulary"]
