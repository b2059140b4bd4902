"""Why the models answer as they do and where they fail: heat maps, look-alikes, the test-set map, suspected
label errors, and the comparisons the Compare and Explore pages show."""
