"""The model families behind one interface, and the registry the command line and the dashboard loop over."""
