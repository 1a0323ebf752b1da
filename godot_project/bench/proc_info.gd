extends RefCounted
## What the bench scenes read about their own process from /proc (Linux only).


## Reads one "Name:   123 kB" line of /proc/self/status (VmRSS, VmHWM, ...); -1 where
## /proc is missing.
static func status_kb(field: String) -> int:
	var f := FileAccess.open("/proc/self/status", FileAccess.READ)
	if f == null:
		return -1
	for i in 200:
		if f.eof_reached():
			break
		var l := f.get_line()
		if l.begins_with(field):
			return int(l.trim_prefix(field).strip_edges().split(" ")[0])
	return -1


## The file a library was mapped from, so the driver can check which build (debug or
## release name) Godot actually loaded.
static func mapped_library(needle: String) -> String:
	var f := FileAccess.open("/proc/self/maps", FileAccess.READ)
	if f == null:
		return ""
	for i in 100_000:
		if f.eof_reached():
			break
		var l := f.get_line()
		var at := l.find("/")
		if at >= 0 and l.find(needle) >= 0:
			return l.substr(at)
	return ""
