#!/usr/bin/python3
"""A real RTSP server for valet-cameras' tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0, python3-gi, gstreamer1.0-plugins-{good,bad}) serving an H.264 MP4 at
rtsp://127.0.0.1:PORT/MOUNT.

Usage: rtsp_server.py VIDEO.mp4 [MOUNT]   serve; prints "PORT 12345" once listening
       rtsp_server.py --check             exit 0 when everything needed is installed, else say what is not

Binds a free port itself (no race with other tests). Runs until killed or until its stdin
closes, so a test that dies takes its server with it. Each client gets its own pipeline from
the first frame, paced in real time; the stream ends at the end of the file.
"""

import sys
import threading

# The elements the pipeline below needs, and the Debian package each comes from.
ELEMENTS = {
    "filesrc": "gstreamer1.0-plugins-base",
    "qtdemux": "gstreamer1.0-plugins-good",
    "h264parse": "gstreamer1.0-plugins-bad",
    "rtph264pay": "gstreamer1.0-plugins-good",
}


def load():
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    return GLib, Gst, GstRtspServer


def check() -> int:
    try:
        _, Gst, _ = load()
    except (ImportError, ValueError) as error:
        print(f"python3-gi with GstRtspServer 1.0 is missing ({error})")
        return 1
    missing = [f"{name} ({package})" for name, package in ELEMENTS.items() if Gst.ElementFactory.find(name) is None]
    if missing:
        print("GStreamer elements missing: " + ", ".join(missing))
        return 1
    return 0


def serve(video: str, mount: str) -> int:
    GLib, _, GstRtspServer = load()
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service("0")
    factory = GstRtspServer.RTSPMediaFactory()
    location = video.replace("\\", "\\\\").replace('"', '\\"')
    # The MP4's timestamps pace the stream; h264parse puts SPS/PPS where a client joining needs them.
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print("could not attach the RTSP server", file=sys.stderr)
        return 1
    print(f"PORT {server.get_bound_port()}", flush=True)

    loop = GLib.MainLoop()

    def quit_when_stdin_closes() -> None:
        sys.stdin.read()
        GLib.idle_add(loop.quit)

    threading.Thread(target=quit_when_stdin_closes, daemon=True).start()
    loop.run()
    return 0


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] == "--check":
        return check()
    if len(sys.argv) not in (2, 3) or sys.argv[1].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    return serve(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "/lane")


if __name__ == "__main__":
    sys.exit(main())
