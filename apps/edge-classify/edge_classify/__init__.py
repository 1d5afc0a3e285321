"""edge_classify: classify a folder of images or a stream of frames with an edgekd artifact.

Run it with ``PYTHONPATH=apps/edge-classify python -m edge_classify ARTIFACT FOLDER``.
"""

from edge_classify.classify import Classifier, Summary, folder_images, raw_frames

__all__ = ["Classifier", "Summary", "folder_images", "raw_frames"]
