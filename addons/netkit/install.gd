extends SceneTree
## Registers netkit in this project's `.godot/extension_list.cfg`, for projects that got
## the addon by unzipping it (or by a fresh clone that does not commit that file):
##
##     godot --headless --path <project> --script res://addons/netkit/install.gd
##     godot --headless --path <project> --import
##
## Why: a headless editor session that discovers a GDExtension with registered classes
## for the first time aborts at shutdown with exit code 134 after doing its work (Godot
## bug godotengine/godot#123511), so a project's first `--import` fails. An extension
## already listed in `.godot/extension_list.cfg` is loaded at startup instead, and the
## import exits 0. This script only adds netkit's line: extensions already listed stay,
## and running it again changes nothing. It exits 0 on success, 1 with a message on error.

const LIST_FILE := "extension_list.cfg"


func _initialize() -> void:
	quit(_register())


func _register() -> int:
	# This file sits next to netkit.gdextension wherever the addon was put.
	var entry: String = get_script().resource_path.get_base_dir().path_join("netkit.gdextension")
	if not FileAccess.file_exists(entry):
		printerr("netkit install: %s is missing; unzip the whole addon folder" % entry)
		return 1
	# Godot keeps the list in the project data folder: .godot/, or godot/ when
	# application/config/use_hidden_project_data_directory is off.
	var data_dir := "res://.godot"
	if not ProjectSettings.get_setting("application/config/use_hidden_project_data_directory", true):
		data_dir = "res://godot"
	var list_path := data_dir.path_join(LIST_FILE)
	var text := ""
	if FileAccess.file_exists(list_path):
		text = FileAccess.get_file_as_string(list_path)
		if text.is_empty() and FileAccess.get_open_error() != OK:
			printerr("netkit install: cannot read %s (%s)" % [list_path, error_string(FileAccess.get_open_error())])
			return 1
	# Godot trims each line when it reads the list, so compare trimmed lines.
	for line in text.split("\n"):
		if line.strip_edges() == entry:
			print("netkit install: %s already lists %s" % [list_path, entry])
			return 0
	if not text.is_empty() and not text.ends_with("\n"):
		text += "\n"
	text += entry + "\n"
	var err := DirAccess.make_dir_recursive_absolute(data_dir)
	if err != OK:
		printerr("netkit install: cannot create %s (%s)" % [data_dir, error_string(err)])
		return 1
	# Written beside the list and renamed over it, so an interrupted run keeps the old list.
	var partial := list_path + ".partial"
	var file := FileAccess.open(partial, FileAccess.WRITE)
	if file == null:
		printerr("netkit install: cannot write %s (%s)" % [partial, error_string(FileAccess.get_open_error())])
		return 1
	file.store_string(text)
	file.close()
	err = DirAccess.rename_absolute(partial, list_path)
	if err != OK:
		printerr("netkit install: cannot replace %s (%s)" % [list_path, error_string(err)])
		return 1
	print("netkit install: added %s to %s" % [entry, list_path])
	return 0
