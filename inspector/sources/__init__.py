"""Every way a picture arrives: image folders (``folder``), video files (``video``), OpenCV cameras and streams
(``live``), synthetic parts (``synthetic``), GenICam cameras through harvesters (``genicam``) and Basler's
pylon (``pylon``); one ``FrameSource`` protocol (``inspector.core.ports``), chosen by ``open_source``
(``opening``) from ``[camera] type``. Reading picture files (``images``) and decoding with the decoder's
complaints heard (``decoding``) live here too. A camera SDK is imported by its own module alone."""
