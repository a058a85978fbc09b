"""A freedesktop notification service (org.freedesktop.Notifications) for the watch test, on
the session bus DBUS_SESSION_BUS_ADDRESS names. Prints "ready" once it owns the name, then one
JSON line per notification: its app name, summary, body, urgency and the bytes of the image its
image-path hint names (hex), read when the notification arrives."""

import json
import sys

from gi.repository import Gio, GLib

INTERFACE = """
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="Notify">
      <arg type="s" direction="in"/><arg type="u" direction="in"/>
      <arg type="s" direction="in"/><arg type="s" direction="in"/>
      <arg type="s" direction="in"/><arg type="as" direction="in"/>
      <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/>
      <arg type="u" direction="out"/>
    </method>
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="GetServerInformation">
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" direction="in"/></method>
  </interface>
</node>
"""

shown = 0


def image(path):
    try:
        with open(path, "rb") as f:
            return f.read().hex()
    except OSError as e:
        return "unreadable: " + str(e)


def call(connection, sender, path, interface, method, parameters, invocation):
    global shown
    if method == "Notify":
        app, _replaces, _icon, summary, body, _actions, hints, _timeout = parameters.unpack()
        shown += 1
        print(json.dumps({
            "app": app,
            "summary": summary,
            "body": body,
            "urgency": hints.get("urgency"),
            "image": image(hints["image-path"]) if "image-path" in hints else None,
        }), flush=True)
        invocation.return_value(GLib.Variant("(u)", (shown,)))
    elif method == "GetCapabilities":
        invocation.return_value(GLib.Variant("(as)", (["body", "body-markup"],)))
    elif method == "GetServerInformation":
        invocation.return_value(GLib.Variant("(ssss)", ("test", "keyhole", "1", "1.2")))
    else:
        invocation.return_value(None)


def acquired(connection, name):
    connection.register_object(
        "/org/freedesktop/Notifications",
        Gio.DBusNodeInfo.new_for_xml(INTERFACE).interfaces[0],
        call,
        None,
        None,
    )
    print("ready", flush=True)


def lost(connection, name):
    sys.exit("could not own " + name)


Gio.bus_own_name(Gio.BusType.SESSION, "org.freedesktop.Notifications",
                 Gio.BusNameOwnerFlags.NONE, None, acquired, lost)
GLib.MainLoop().run()
