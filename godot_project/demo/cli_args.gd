class_name DemoArgs
extends RefCounted
## Reads the demo scenes' `--key=value` arguments (the ones after `--` on Godot's command
## line), shared by the server and client scenes.


## Every `--key=value` user argument, as key -> value.
static func parse() -> Dictionary:
	var out := {}
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and arg.contains("="):
			out[arg.substr(2, arg.find("=") - 2)] = arg.substr(arg.find("=") + 1)
	return out
