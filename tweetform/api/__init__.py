"""What tweetform knows of the Twitter/X API: endpoints, URLs, error meanings."""
