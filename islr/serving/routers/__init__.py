"""The server's routes, one router per concern: model, predict, stream, vocabulary, page, docs."""

from islr.serving.routers import docs, model, page, predict, stream, vocabulary

__all__ = ["docs", "model", "page", "predict", "stream", "vocabulary"]
