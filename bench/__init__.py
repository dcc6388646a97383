"""The benchmark of the GraphQL server: `python3 manage.py bench` (see `bench.run`)."""
