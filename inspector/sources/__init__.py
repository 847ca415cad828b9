"""Every way a picture arrives: image folders, video files, OpenCV cameras and streams, synthetic parts;
one ``FrameSource`` protocol (``inspector.core.ports``), chosen by ``open_source``. Decoding with the
decoder's complaints heard lives here too (``decoding``)."""
