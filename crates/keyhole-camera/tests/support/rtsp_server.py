"""A real RTSP server for tests (GStreamer's gst-rtsp-server), over loopback only: a live H.264
test pattern (a moving ball) at rtsp://127.0.0.1:PORT/door, the same with a 440 Hz tone as
AAC-LC (48 kHz) at /door-aac, and as G.711 mu-law (8 kHz) at /door-pcmu; and the pattern as
H.265 with the G.711 tone at /door-h265-pcmu.

Usage: /usr/bin/python3 rtsp_server.py PORT
With PORT 0 the system picks a free one; "ready PORT" on standard output says which, once the
server listens.
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
VIDEO = (
    "videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=640,height=360,framerate=15/1 "
    "! x264enc tune=zerolatency key-int-max=15 "
    "! rtph264pay name=pay0 pt=96 config-interval=1 "
)
VIDEO_H265 = (
    "videotestsrc is-live=true pattern=ball "
    "! video/x-raw,width=640,height=360,framerate=15/1 "
    "! x265enc tune=zerolatency key-int-max=15 speed-preset=ultrafast "
    "! rtph265pay name=pay0 pt=96 config-interval=1 "
)
# 20 ms buffers, as cameras packetize sound: a live source stamps a buffer with its first
# sample, so longer ones would put the sound a buffer behind the pictures.
TONE = "audiotestsrc is-live=true wave=sine freq=440 samplesperbuffer={} "
PCMU = (TONE.format(160) + "! audio/x-raw,rate=8000,channels=1 ! mulawenc "
        "! rtppcmupay name=pay1 pt=0")
for path, video, sound in [
    ("/door", VIDEO, ""),
    ("/door-aac", VIDEO, TONE.format(960) + "! audio/x-raw,rate=48000,channels=1 ! voaacenc "
     "! rtpmp4gpay name=pay1 pt=97"),
    ("/door-pcmu", VIDEO, PCMU),
    ("/door-h265-pcmu", VIDEO_H265, PCMU),
]:
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch("( " + video + sound + " )")
    factory.set_shared(True)
    server.get_mount_points().add_factory(path, factory)
server.attach(None)
print("ready", server.get_bound_port(), flush=True)
GLib.MainLoop().run()
