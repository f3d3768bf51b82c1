"""The video library: index folders of videos (shots, segments, thumbnails, speech, on-screen
text, embeddings) into an embedded LanceDB store, then search it and find similar videos."""
