"""A real RTSP server for tests (GStreamer's gst-rtsp-server): serves a live H.264 test
pattern (a moving ball) at rtsp://127.0.0.1:PORT/door, over loopback only.

Usage: /usr/bin/python3 rtsp_server.py PORT
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(sys.argv[1])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    "( videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=640,height=360,framerate=15/1 "
    "! x264enc tune=zerolatency key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
factory.set_shared(True)
server.get_mount_points().add_factory("/door", factory)
server.attach(None)
print("ready", flush=True)
GLib.MainLoop().run()
