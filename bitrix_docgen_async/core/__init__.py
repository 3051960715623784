"""The sans-I/O core: encoding, envelopes, error mapping, conversion and limit arithmetic.

Nothing in this package performs I/O or imports aiohttp or asyncio, so it is tested synchronously.
"""
