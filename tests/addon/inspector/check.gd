@tool
extends EditorPlugin
## Run inside a headless editor by tests/addon/editor_inspector.rs: shows each netkit node
## in the editor's own Inspector, prints every row as the user sees it (ROW lines), edits
## rows through their controls as a user would (EDIT lines), then quits.


func _enter_tree() -> void:
	_run.call_deferred()


func _rows(node: Node, rows: Array) -> void:
	for child in node.get_children():
		if child is EditorProperty:
			rows.append(child)
		_rows(child, rows)


func _describe(row: EditorProperty) -> Dictionary:
	var seen := {
		"property": String(row.get_edited_property()),
		"label": row.label,
		"editor": row.get_class(),
	}
	for info in row.get_edited_object().get_property_list():
		if info.name == seen.property:
			seen["hint_string"] = info.hint_string
	for amount in row.find_children("*", "EditorSpinSlider", true, false):
		seen["amount"] = amount.value
	for menu: OptionButton in row.find_children("*", "OptionButton", true, false):
		seen["unit"] = menu.text
		var offered := []
		for i in menu.item_count:
			if not menu.is_item_disabled(i):
				offered.append(menu.get_item_text(i))
		seen["units_offered"] = offered
	return seen


func _row(property: String) -> EditorProperty:
	var rows := []
	_rows(EditorInterface.get_inspector(), rows)
	for row: EditorProperty in rows:
		if String(row.get_edited_property()) == property:
			return row
	return null


func _after_edit(step: String, row: EditorProperty, node: Node, property: String) -> void:
	await get_tree().process_frame
	var seen := _describe(_row(property))
	seen["step"] = step
	seen["stored"] = node.get(property)
	print("EDIT ", JSON.stringify(seen))


func _run() -> void:
	# Let the editor finish starting (scan, layout) first.
	for i in 30:
		await get_tree().process_frame
	for cls in ["HTTPPool", "DTLSPeer", "AgonesSDK"]:
		var node: Node = ClassDB.instantiate(cls)
		EditorInterface.inspect_object(node)
		for i in 3:
			await get_tree().process_frame
		var rows := []
		_rows(EditorInterface.get_inspector(), rows)
		for row: EditorProperty in rows:
			var seen := _describe(row)
			seen["class"] = cls
			print("ROW ", JSON.stringify(seen))
		if cls == "HTTPPool":
			await _edit_pool(node)
		EditorInterface.inspect_object(null)
		node.free()
	await _edit_script_pool()
	await _edit_two_pools()
	await _reload_extension()
	get_tree().quit()


func _amount(row: EditorProperty) -> EditorSpinSlider:
	return row.find_children("*", "EditorSpinSlider", true, false)[0]


func _menu(row: EditorProperty) -> OptionButton:
	return row.find_children("*", "OptionButton", true, false)[0]


func _pick(row: EditorProperty, unit: String) -> void:
	var menu := _menu(row)
	for i in menu.item_count:
		if menu.get_item_text(i) == unit:
			menu.select(i)
			menu.item_selected.emit(i)


func _edit_pool(pool: Node) -> void:
	var body := _row("max_body_bytes")
	# Typing 32 where it reads "16 MiB".
	_amount(body).value = 32
	await _after_edit("typed 32", body, pool, "max_body_bytes")
	# Picking KiB shows the same size in KiB and stores nothing new.
	_pick(body, "KiB")
	await _after_edit("picked KiB", body, pool, "max_body_bytes")
	_amount(body).value = 1536
	await _after_edit("typed 1536", body, pool, "max_body_bytes")
	# A script sets a size no larger unit holds whole, then one a larger unit does.
	pool.max_body_bytes = 1000
	body.update_property()
	await _after_edit("script set 1000", body, pool, "max_body_bytes")
	pool.max_body_bytes = 4294967296
	body.update_property()
	await _after_edit("script set 4 GiB", body, pool, "max_body_bytes")
	# Undo, as Ctrl+Z in the editor, brings back a value the row's own edits replaced.
	var undo_redo := EditorInterface.get_editor_undo_redo()
	undo_redo.get_history_undo_redo(undo_redo.get_object_history_id(pool)).undo()
	await _after_edit("undone", body, pool, "max_body_bytes")
	var age := _row("outbox_max_age")
	_amount(age).value = 30
	await _after_edit("typed 30", age, pool, "outbox_max_age")
	_pick(age, "h")
	_amount(age).value = 36
	await _after_edit("typed 36 h", age, pool, "outbox_max_age")
	# Beyond what a float holds exactly: the largest size it does, not a rounded figure.
	var download := _row("max_download_bytes")
	_pick(download, "TiB")
	_amount(download).value = 100000000
	await _after_edit("typed 1e8 TiB", download, pool, "max_download_bytes")


## A game's own node extending HTTPPool, with a size its range lets go negative.
func _edit_script_pool() -> void:
	var script := GDScript.new()
	script.source_code = "@tool\nextends HTTPPool\n@export_range(-1048576, 1024, 1, \"or_less\", \"suffix:B\") var delta: int = -2048\n"
	script.reload()
	var node: Node = ClassDB.instantiate("HTTPPool")
	node.set_script(script)
	EditorInterface.inspect_object(node)
	for i in 3:
		await get_tree().process_frame
	var delta := _row("delta")
	await _after_edit("script shown", delta, node, "delta")
	_amount(delta).value = -3
	await _after_edit("typed -3 KiB", delta, node, "delta")
	EditorInterface.inspect_object(null)
	node.free()


## Two pools selected at once: the Inspector edits one MultiNodeEdit standing for both,
## whose rows read as a single pool's and whose edits reach both.
func _edit_two_pools() -> void:
	EditorInterface.open_scene_from_path("res://two_pools.tscn")
	for i in 5:
		await get_tree().process_frame
	var root := EditorInterface.get_edited_scene_root()
	var selection := EditorInterface.get_selection()
	selection.clear()
	selection.add_node(root.get_node("A"))
	selection.add_node(root.get_node("B"))
	for i in 10:
		await get_tree().process_frame
	var body := _row("max_body_bytes")
	await _after_edit("two selected", body, root.get_node("B"), "max_body_bytes")
	_amount(body).value = 2
	await _after_edit("two typed 2 MiB: A", body, root.get_node("A"), "max_body_bytes")
	await _after_edit("two typed 2 MiB: B", body, root.get_node("B"), "max_body_bytes")


## The extension reloaded (a rebuilt library) while a pool is in the Inspector: its rows
## come back working, with no error about instances Godot cannot recreate.
func _reload_extension() -> void:
	var pool := EditorInterface.get_edited_scene_root().get_node("A")
	EditorInterface.inspect_object(pool)
	for i in 3:
		await get_tree().process_frame
	GDExtensionManager.reload_extension("res://addons/netkit/netkit.gdextension")
	for i in 10:
		await get_tree().process_frame
	var body := _row("max_body_bytes")
	await _after_edit("reloaded", body, pool, "max_body_bytes")
	_amount(_row("max_body_bytes")).value = 8
	await _after_edit("reloaded typed 8", body, pool, "max_body_bytes")
