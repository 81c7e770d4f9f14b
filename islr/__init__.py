"""islr: Indian Sign Language isolated-sign recognition.

Data flow, one sub-package per stage:
landmarks -> extract -> datasets -> features -> models -> training -> evaluation -> inference -> serving.
``import islr`` is cheap: MediaPipe and Torch are imported only by the stages that need them.
"""

__version__ = "0.1.0"
