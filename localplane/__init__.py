"""The local plane: what AWS would do with our specs, on one machine.

`localplane.services` starts the real local servers (a moto server for the AWS APIs, a `redis-server` in a temp
dir) for `huntazectl up` and for the tests. The plane that polls event source mappings, keeps scraper processes
running and applies target tracking builds on it.
"""
