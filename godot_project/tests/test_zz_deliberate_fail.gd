extends NetkitTest

func test_fails_assertion() -> void:
	assert_eq(1, 1.0, "int vs float")
	assert_true(false, "second failure")

func test_passes() -> void:
	assert_eq("x", "x")

func test_script_error() -> void:
	var x = null
	x.foo()

func test_unexpected_push_error() -> void:
	push_error("an unexpected error")

func test_expected_push_error() -> void:
	expect_error("an expected error")
	push_error("an expected error")

func test_leaks() -> void:
	var n := Node.new()
	n.name = "leaked"
