"""Route groups of the service: search, videos (list, details, media, thumbnails, upload), jobs, predict."""
