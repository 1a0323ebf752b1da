extends NetkitTest
## The addon's integration with the editor and engine: ProjectSettings, Performance
## monitors, and the typed API the editor's autocompletion and help read from the ClassDB.


func test_project_settings_are_registered() -> void:
	assert_true(ProjectSettings.has_setting("netkit/runtime/worker_threads"))
	assert_eq(ProjectSettings.get_setting("netkit/runtime/worker_threads"), 2)
	assert_eq(ProjectSettings.get_setting("netkit/debug/stats_log_interval"), 0.0)


func test_performance_monitors_count_requests() -> void:
	for name in ["netkit/http_in_flight", "netkit/http_queued", "netkit/dtls_peers"]:
		assert_true(Performance.has_custom_monitor(name), name)
	var pool := HTTPPool.new()
	pool.base_url = env("http-url")
	pool.max_concurrent = 2
	add_child(pool)
	var tasks: Array[HTTPTask] = []
	for i in 5:
		tasks.append(pool.fetch("/delay?ms=500"))
	assert_eq(Performance.get_custom_monitor("netkit/http_in_flight"), 2)
	assert_eq(Performance.get_custom_monitor("netkit/http_queued"), 3)
	pool.cancel_all()
	await wait_until(func() -> bool: return tasks.all(func(t): return t.is_done()), 5.0)
	assert_eq(Performance.get_custom_monitor("netkit/http_in_flight"), 0)


func test_defaults_are_sensible() -> void:
	var pool := HTTPPool.new()
	assert_eq(pool.max_concurrent, 8)
	assert_eq(pool.max_queued, 1024)
	assert_eq(pool.timeout, 30.0)
	assert_eq(pool.max_retries, 2)
	assert_eq(pool.verify_tls, true)
	assert_eq(pool.max_body_bytes, 16 * 1024 * 1024)
	assert_true(pool.user_agent.begins_with("godot-netkit/"))
	pool.free()


func test_dtls_monitor_counts_peers() -> void:
	var keys := DTLSPeer.generate_self_signed()
	var server := DTLSPeer.new()
	add_child(server)
	assert_eq(server.start_server(0, {"certificate": keys["certificate"], "private_key": keys["private_key"]}), OK)
	var client := DTLSPeer.new()
	add_child(client)
	assert_eq(client.connect_to_server("127.0.0.1", server.get_local_port(), {"pinned_sha256": keys["sha256_fingerprint"]}), OK)
	assert_not_null(await wait_signal(client.peer_connected, 10.0))
	assert_true(await wait_until(func() -> bool: return Performance.get_custom_monitor("netkit/dtls_peers") == 2, 5.0),
			"one peer on each side")
	client.close()
	server.close()
	assert_true(await wait_until(func() -> bool: return Performance.get_custom_monitor("netkit/dtls_peers") == 0, 5.0))
	assert_eq(Netkit.get_stats()["dtls_peers"], 0)


## The method, if `cls` has one of that name, from the ClassDB (what autocompletion reads).
func class_method(cls: StringName, name: StringName) -> Dictionary:
	for method in ClassDB.class_get_method_list(cls, true):
		if method["name"] == name:
			return method
	fail("%s has no method %s" % [cls, name])
	return {}


func is_enum_type(info: Dictionary, enum_name: String) -> bool:
	return info["type"] == TYPE_INT and info["class_name"] == enum_name \
			and info["usage"] & PROPERTY_USAGE_CLASS_IS_ENUM != 0


func test_netkit_enums_are_class_enums() -> void:
	assert_true(ClassDB.class_has_enum("DTLSPeer", "Status", true))
	assert_eq(ClassDB.class_get_enum_constants("DTLSPeer", "Status", true), PackedStringArray([
		"STATUS_DISCONNECTED", "STATUS_HANDSHAKING", "STATUS_CONNECTED", "STATUS_ERROR"]))
	assert_eq(ClassDB.class_get_integer_constant("DTLSPeer", "STATUS_CONNECTED"), 2)
	assert_eq(ClassDB.class_get_integer_constant_enum("DTLSPeer", "STATUS_ERROR", true), &"Status")

	assert_true(ClassDB.class_has_enum("HTTPResponse", "Error", true))
	var errors := ClassDB.class_get_enum_constants("HTTPResponse", "Error", true)
	assert_eq(errors.size(), 16)
	assert_eq(errors[0], "ERR_NONE")
	for name in ["ERR_TIMEOUT", "ERR_CANCELLED", "ERR_HTTP_STATUS", "ERR_INVALID_REQUEST", "ERR_HEADERS_TOO_LARGE", "ERR_HASH_MISMATCH", "ERR_FILE"]:
		assert_true(errors.has(name), name)
	assert_eq(ClassDB.class_get_integer_constant("HTTPResponse", "ERR_TIMEOUT"), 4)
	assert_eq(ClassDB.class_get_integer_constant("HTTPResponse", "ERR_FILE"), 15)
	assert_eq(ClassDB.class_get_enum_constants("HTTPStream", "Mode", true), PackedStringArray([
		"MODE_CHUNKS", "MODE_LINES", "MODE_EVENTS"]))
	assert_eq(HTTPStream.Mode.MODE_EVENTS, HTTPStream.MODE_EVENTS)
	# The enum is usable by name in scripts, and its constants stay on the class too.
	assert_eq(HTTPResponse.Error.ERR_TIMEOUT, HTTPResponse.ERR_TIMEOUT)
	assert_eq(DTLSPeer.Status.STATUS_ERROR, DTLSPeer.STATUS_ERROR)


func test_parameters_and_returns_name_their_enums() -> void:
	var request := class_method("HTTPPool", "request")
	assert_true(is_enum_type(request["args"][0], "HTTPClient.Method"), str(request["args"][0]))
	var stream := class_method("HTTPPool", "stream")
	assert_true(is_enum_type(stream["args"][3], "HTTPStream.Mode"), str(stream["args"][3]))
	var status := class_method("DTLSPeer", "get_status")
	assert_true(is_enum_type(status["return"], "DTLSPeer.Status"), str(status["return"]))
	var error := class_method("HTTPResponse", "get_error")
	assert_true(is_enum_type(error["return"], "HTTPResponse.Error"), str(error["return"]))
	var checked := 0
	for prop in ClassDB.class_get_property_list("HTTPResponse", true):
		if prop["name"] == "error":
			assert_true(is_enum_type(prop, "HTTPResponse.Error"), str(prop))
			checked += 1
	# The help page and the Inspector read a property's type from it and from its getter.
	for prop in ClassDB.class_get_property_list("HTTPStream", true):
		if prop["name"] == "mode":
			assert_true(is_enum_type(prop, "HTTPStream.Mode"), str(prop))
			checked += 1
	var get_mode := class_method("HTTPStream", "get_mode")
	assert_true(is_enum_type(get_mode["return"], "HTTPStream.Mode"), str(get_mode["return"]))
	assert_eq(checked, 2, "HTTPResponse.error and HTTPStream.mode are listed")
	# Godot's own methods that take or give the same enums, for comparison.
	var godot_request := class_method("HTTPRequest", "request")
	assert_eq(godot_request["args"][2]["class_name"], &"HTTPClient.Method")


func test_cancel_is_not_const() -> void:
	assert_eq(class_method("HTTPTask", "cancel")["flags"] & METHOD_FLAG_CONST, 0, "cancel() changes the task")
	assert_ne(class_method("HTTPTask", "is_done")["flags"] & METHOD_FLAG_CONST, 0, "is_done() does not")


func test_plain_ints_still_work() -> void:
	var pool := HTTPPool.new()
	pool.base_url = env("http-url")
	add_child(pool)
	var post: int = 2  # HTTPClient.METHOD_POST as a plain int
	var task := pool.request(post, "/echo", {"a": 1})
	if not assert_true(await wait_until(task.is_done, 10.0), "the request ends"):
		return
	assert_true(task.response.ok, task.response.error_message)
	assert_eq(task.response.json["method"], "POST")
	var error: int = task.response.error
	assert_eq(error, 0)

	var unknown: int = 99
	task = pool.request(unknown, "/echo", null)
	if not assert_true(await wait_until(task.is_done, 10.0), "the request ends"):
		return
	assert_eq(task.response.error, HTTPResponse.ERR_INVALID_REQUEST)
	assert_contains(task.response.error_message, "99 is not an HTTPClient.Method value")

	var peer := DTLSPeer.new()
	var status: int = peer.get_status()
	assert_eq(status, DTLSPeer.STATUS_DISCONNECTED)
	var typed: DTLSPeer.Status = peer.get_status()
	assert_eq(typed, DTLSPeer.Status.STATUS_DISCONNECTED)
	peer.free()


## The Inspector's sections of `cls`, as it builds them from the property list: each
## editable property with the group and subgroup it lands in (a group's or subgroup's
## prefix ends it at the first property that does not start with it).
func inspector_sections(cls: StringName) -> Array[Dictionary]:
	var out: Array[Dictionary] = []
	var group := ""
	var group_prefix := ""
	var subgroup := ""
	var subgroup_prefix := ""
	for prop in ClassDB.class_get_property_list(cls, true):
		if prop["usage"] & PROPERTY_USAGE_GROUP:
			group = prop["name"]
			group_prefix = prop["hint_string"]
			subgroup = ""
			subgroup_prefix = ""
		elif prop["usage"] & PROPERTY_USAGE_SUBGROUP:
			subgroup = prop["name"]
			subgroup_prefix = prop["hint_string"]
		elif prop["usage"] & PROPERTY_USAGE_EDITOR:
			var name: String = prop["name"]
			if not name.begins_with(group_prefix):
				group = ""
				group_prefix = ""
			if not name.begins_with(subgroup_prefix):
				subgroup = ""
				subgroup_prefix = ""
			out.append({"name": name, "group": group, "subgroup": subgroup,
					"label": name.trim_prefix(group_prefix).trim_prefix(subgroup_prefix)})
	return out


func test_pool_inspector_is_grouped() -> void:
	var sections := inspector_sections("HTTPPool")
	assert_eq(sections.size(), 29, str(sections.map(func(s): return s["name"])))
	var groups: Array[String] = []
	for s in sections:
		assert_true(s["group"] != "", "%s is in a group" % s["name"])
		if not groups.has(s["group"]):
			groups.append(s["group"])
	assert_eq(groups, ["Connection", "Retries", "Dispatch", "Outbox", "Streams", "Downloads",
			"Simulation", "TLS"] as Array[String])
	# The tall PEM box comes last, so it does not push the rest down.
	assert_eq(sections[-1]["name"], "trusted_ca_pem")
	var by_name := {}
	for s in sections:
		by_name[s["name"]] = s
	assert_eq(by_name["outbox_sync_write"]["label"], "sync_write")
	assert_eq(by_name["sse_reconnect_delay"]["subgroup"], "Server-Sent Events")
	assert_eq(by_name["sse_reconnect_delay"]["label"], "reconnect_delay")
	assert_eq(by_name["pool_idle_timeout"]["label"], "idle_timeout")
	assert_eq(by_name["dispatch_budget_usec"]["label"], "budget_usec")
	assert_eq(by_name["max_retries"]["subgroup"], "")
	assert_eq(by_name["retry_base_delay"]["subgroup"], "Backoff")
	assert_eq(by_name["retry_max_delay"]["label"], "max_delay")
	# Script names are unchanged: groups only change what the Inspector shows.
	var pool := HTTPPool.new()
	assert_eq(pool.outbox_sync_write, true)
	assert_eq(pool.dispatch_max_per_frame, 256)
	pool.free()


func test_agones_inspector_groups_the_health_pings() -> void:
	var sections := inspector_sections("AgonesSDK")
	var rows := sections.map(func(s): return [s["name"], s["group"], s["label"]])
	assert_eq(rows, [
		["port", "", "port"],
		["watch_enabled", "", "watch_enabled"],
		["health_enabled", "Health", "enabled"],
		["health_interval", "Health", "interval"],
		["health_tolerance", "Health", "tolerance"],
	])
	var sdk := AgonesSDK.new()
	assert_eq(sdk.health_interval, 2.0, "script names are unchanged")
	sdk.free()


func test_inspector_units_read_as_godot_writes_them() -> void:
	# Godot's own nodes write "s" and "B" after the number; a unit in the name alone leaves
	# the reader guessing. A "_usec" name is the exception: the Inspector already labels it
	# "(µsec)", as Godot's own "..._usec" settings (no suffix), so a suffix would repeat it.
	var checked := 0
	for cls in ["HTTPPool", "DTLSPeer", "AgonesSDK"]:
		for prop in ClassDB.class_get_property_list(cls, true):
			if not prop["usage"] & PROPERTY_USAGE_EDITOR:
				continue
			var name: String = prop["name"]
			var hint: String = prop["hint_string"]
			var unit := ""
			if name.ends_with("_usec"):
				assert_false(hint.contains("suffix:"), "%s.%s: %s repeats (µsec)" % [cls, name, hint])
				checked += 1
			elif name.ends_with("_bytes"):
				unit = "suffix:B"
			elif prop["type"] == TYPE_FLOAT:
				unit = "suffix:s"
			if unit != "":
				assert_true(hint.contains(unit), "%s.%s: %s lacks %s" % [cls, name, hint, unit])
				checked += 1
	assert_true(checked >= 15, "found %d properties with units" % checked)
