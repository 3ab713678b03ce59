//! A real NGINX in front of a small upstream (being written).
