"""Video summarization: importance scores per segment, knapsack selection under a duration
budget, and the outputs (highlight reel, contact sheet, chapters, extractive text summary)."""
