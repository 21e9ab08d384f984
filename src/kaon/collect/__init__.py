"""The collection front doors: mParticle Events API, web SDK uploads and the Segment spec."""
