"""islr: Indian Sign Language isolated-sign recognition.

Data flow: landmarks -> extract -> datasets -> features -> models -> training -> export ->
inference -> serving. Imports run one way, up these layers (tests/test_layers.py): landmarks,
errors; streaming (segmenting a stream), features; extract, datasets; models; modelfile (the
model file's contract); vocabulary; export; evaluation; inference; training; serving; cli.
``import islr`` is cheap: MediaPipe and Torch are imported only by the stages that need them.
"""

__version__ = "0.1.0"
