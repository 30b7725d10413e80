"""OpenCV camera driver: `type: opencv_camera` (any cv2.VideoCapture source: V4L2 device, file, URL)."""

from robo.drivers.opencv_camera.config import OpenCVCameraConfig
from robo.drivers.opencv_camera.driver import OpenCVCamera

__all__ = ["OpenCVCamera", "OpenCVCameraConfig"]
