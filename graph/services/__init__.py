"""Write services: plain async functions over an `AsyncSession` that add and flush, never commit.

The GraphQL mutation that calls them owns the transaction (`graph.mutations.common`). Every service
locks the conversation row first (`FOR NO KEY UPDATE`), so writes to one conversation's graph are
serialised and the consistency rules below cannot be broken by two writers at once; rows are then
locked in a fixed order (conversation, then the rows being changed, by id). Whether the caller may
change the conversation is part of each locking statement (`graph.services.common`): nothing of
anyone else's is ever locked.
"""
