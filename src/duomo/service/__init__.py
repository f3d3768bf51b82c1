"""The REST service and web page of ``duomo serve``: search, browse, play, upload, caption, answer."""
