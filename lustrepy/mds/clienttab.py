"""The MDT's client table: the clients a restarted MDS waits for during recovery.

A client is recorded (durably) when it first connects and forgotten when it leaves or is
evicted; after a restart every client still in the table is expected to reconnect and replay."""
from __future__ import annotations

from .store import Store


def known(store: Store) -> list[str]:
    """Every client in the table."""
    return [r[0] for r in store.read().conn.execute("SELECT client_id FROM clients")]


def _has(store: Store, client_id: str) -> bool:
    return store.read().conn.execute("SELECT 1 FROM clients WHERE client_id = ?", (client_id,)).fetchone() is not None


def joined(store: Store, client_id: str) -> bool:
    """Record a connecting client (synced: recovery must know it); False if known already."""
    if _has(store, client_id):
        return False
    store.write(lambda tx: tx.conn.execute("INSERT OR IGNORE INTO clients (client_id, since_ns) VALUES (?, ?)",
                                           (client_id, tx.now)))
    store.sync()
    return True


def left(store: Store, client_id: str) -> None:
    """Forget a client that left or was evicted."""
    if _has(store, client_id):
        store.write(lambda tx: tx.conn.execute("DELETE FROM clients WHERE client_id = ?", (client_id,)))
