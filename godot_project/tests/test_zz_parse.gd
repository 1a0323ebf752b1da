extends NetkitTest
class_name ZzParseProbe

func test_parse_broken() -> void:
	assert_true(true)
