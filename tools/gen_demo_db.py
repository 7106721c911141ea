#!/usr/bin/python3
"""Build the demo SQLite database that readthru's demo configuration loads from.

Usage:
  tools/gen_demo_db.py OUT.db [--users 100000] [--products 100000] [--seed 1]

Tables (ids run from 1 to the count):
  users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, created_at TEXT)
  products(id INTEGER PRIMARY KEY, name TEXT, price REAL, stock INTEGER, category TEXT)

created_at is UTC, "YYYY-MM-DD HH:MM:SS", and grows with the id. Some names are not ASCII
("José Nuñez"), so non-ASCII values reach Redis through the loaders. E-mail addresses are unique.

Deterministic: the same arguments give the same rows (and, with the same SQLite, the same file).
Users and products draw from separate random streams, so --users does not change the products.

Atomic and idempotent: the database is written to OUT.db.tmp in one transaction, synced, and
renamed over OUT.db; an existing OUT.db is replaced whole, and a failed run leaves it as it was.
Leftover OUT.db-journal/-wal/-shm files belong to the old database and are removed, since SQLite
would apply them to the new one. Do not run it while another process writes OUT.db.

Only the standard library is used. Prints one summary line; exits 1 on failure.
"""
import argparse
import os
import random
import sqlite3
import sys
import time

FIRST_NAMES = [
    ("James", "james"), ("Mary", "mary"), ("Robert", "robert"), ("Patricia", "patricia"),
    ("John", "john"), ("Jennifer", "jennifer"), ("Michael", "michael"), ("Linda", "linda"),
    ("David", "david"), ("Elizabeth", "elizabeth"), ("William", "william"), ("Barbara", "barbara"),
    ("Richard", "richard"), ("Susan", "susan"), ("Joseph", "joseph"), ("Jessica", "jessica"),
    ("Thomas", "thomas"), ("Sarah", "sarah"), ("Carlos", "carlos"), ("Karen", "karen"),
    ("Wei", "wei"), ("Mei", "mei"), ("Hiroshi", "hiroshi"), ("Yuki", "yuki"), ("Aarav", "aarav"),
    ("Priya", "priya"), ("Mohammed", "mohammed"), ("Fatima", "fatima"), ("Olga", "olga"),
    ("Ivan", "ivan"), ("Lucas", "lucas"), ("Emma", "emma"), ("Noah", "noah"), ("Olivia", "olivia"),
    ("Liam", "liam"), ("Ava", "ava"), ("Mateo", "mateo"), ("Sofia", "sofia"), ("Kwame", "kwame"),
    ("Amara", "amara"), ("José", "jose"), ("Zoë", "zoe"), ("Björn", "bjorn"), ("Chloé", "chloe"),
    ("Łukasz", "lukasz"), ("Søren", "soren"), ("Ana", "ana"), ("Diego", "diego"),
]
LAST_NAMES = [
    ("Smith", "smith"), ("Johnson", "johnson"), ("Williams", "williams"), ("Brown", "brown"),
    ("Jones", "jones"), ("Garcia", "garcia"), ("Miller", "miller"), ("Davis", "davis"),
    ("Rodriguez", "rodriguez"), ("Martinez", "martinez"), ("Wilson", "wilson"),
    ("Anderson", "anderson"), ("Taylor", "taylor"), ("Thomas", "thomas"), ("Moore", "moore"),
    ("Jackson", "jackson"), ("Martin", "martin"), ("Lee", "lee"), ("Thompson", "thompson"),
    ("White", "white"), ("Harris", "harris"), ("Clark", "clark"), ("Lewis", "lewis"),
    ("Walker", "walker"), ("Chen", "chen"), ("Wang", "wang"), ("Tanaka", "tanaka"),
    ("Sato", "sato"), ("Patel", "patel"), ("Sharma", "sharma"), ("Khan", "khan"),
    ("Ivanova", "ivanova"), ("Kowalski", "kowalski"), ("Müller", "mueller"),
    ("Schmidt", "schmidt"), ("Rossi", "rossi"), ("Dubois", "dubois"), ("Nuñez", "nunez"),
    ("Okafor", "okafor"), ("Mensah", "mensah"), ("Nielsen", "nielsen"), ("O'Brien", "obrien"),
]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example", "demo.test"]

# category -> (nouns, typical price range)
CATEGORIES = {
    "Books": (["Novel", "Cookbook", "Atlas", "Notebook", "Journal", "Guide"], (4.0, 60.0)),
    "Clothing": (["Shirt", "Jacket", "Scarf", "Hat", "Sweater", "Socks", "Gloves"], (6.0, 180.0)),
    "Electronics": (["Headphones", "Keyboard", "Mouse", "Speaker", "Charger", "Monitor",
                     "Webcam"], (9.0, 900.0)),
    "Garden": (["Shovel", "Planter", "Hose", "Rake", "Bench", "Lantern"], (5.0, 250.0)),
    "Home": (["Chair", "Table", "Lamp", "Clock", "Pillow", "Mug", "Rug", "Shelf"], (5.0, 400.0)),
    "Sports": (["Ball", "Bottle", "Mat", "Racket", "Backpack", "Bike Helmet"], (6.0, 300.0)),
    "Toys": (["Puzzle", "Kite", "Robot", "Train Set", "Board Game", "Teddy Bear"], (3.0, 120.0)),
}
CATEGORY_NAMES = sorted(CATEGORIES)
ADJECTIVES = ["Ergonomic", "Rustic", "Sleek", "Compact", "Handmade", "Vintage", "Durable",
              "Lightweight", "Premium", "Classic", "Modern", "Practical", "Elegant", "Refined"]
MATERIALS = ["Steel", "Wooden", "Cotton", "Leather", "Bamboo", "Ceramic", "Wool", "Granite",
             "Aluminum", "Linen", "Recycled", "Glass"]

CREATED_FROM = 1514764800  # 2018-01-01 00:00:00 UTC
CREATED_TO = 1735689600  # 2025-01-01 00:00:00 UTC

SCHEMA = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE products (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  price REAL NOT NULL,
  stock INTEGER NOT NULL,
  category TEXT NOT NULL
);
"""


def users(count, seed):
    """Yields (id, name, email, created_at) rows; created_at grows with id."""
    rng = random.Random(f"readthru-demo:{seed}:users")
    step = (CREATED_TO - CREATED_FROM) / max(count, 1)
    for user_id in range(1, count + 1):
        first, first_ascii = rng.choice(FIRST_NAMES)
        last, last_ascii = rng.choice(LAST_NAMES)
        style = rng.random()
        if style < 0.5:
            local = f"{first_ascii}.{last_ascii}"
        elif style < 0.8:
            local = f"{first_ascii[0]}{last_ascii}"
        else:
            local = f"{first_ascii}_{last_ascii}"
        email = f"{local}{user_id}@{rng.choice(EMAIL_DOMAINS)}"
        created = CREATED_FROM + int((user_id - 1) * step + rng.random() * step)
        created_at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created))
        yield (user_id, f"{first} {last}", email, created_at)


def products(count, seed):
    """Yields (id, name, price, stock, category) rows."""
    rng = random.Random(f"readthru-demo:{seed}:products")
    for product_id in range(1, count + 1):
        category = rng.choice(CATEGORY_NAMES)
        nouns, (low, high) = CATEGORIES[category]
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(nouns)}"
        # Cheap items are common, expensive ones rare; most prices end in .99 or .49.
        price = low + (high - low) * rng.random() ** 2.5
        cents = rng.choice((0.99, 0.99, 0.99, 0.49, 0.0))
        price = round(int(price) + cents, 2) if cents else round(price, 2)
        stock = 0 if rng.random() < 0.08 else int(1 + 499 * rng.random() ** 3)
        yield (product_id, name, price, stock, category)


def remove_if_present(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def build(out, user_count, product_count, seed):
    tmp = out + ".tmp"
    for path in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
        remove_if_present(path)
    try:
        # The file is private until the rename, so SQLite's own journal and syncs buy nothing:
        # it is synced once below instead.
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = OFF")
            con.execute("PRAGMA synchronous = OFF")
            con.execute("BEGIN")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    con.execute(statement)
            con.executemany("INSERT INTO users VALUES (?, ?, ?, ?)", users(user_count, seed))
            con.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)",
                            products(product_count, seed))
            con.execute("COMMIT")
        finally:
            con.close()
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        for suffix in ("-journal", "-wal", "-shm"):
            remove_if_present(out + suffix)
        os.replace(tmp, out)
    except BaseException:
        remove_if_present(tmp)
        raise
    dir_fd = os.open(os.path.dirname(os.path.abspath(out)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def count_arg(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def main():
    parser = argparse.ArgumentParser(
        description="Build the readthru demo SQLite database (users and products).")
    parser.add_argument("out", metavar="OUT.db", help="database file to create or replace")
    parser.add_argument("--users", type=count_arg, default=100000, help="rows in users")
    parser.add_argument("--products", type=count_arg, default=100000, help="rows in products")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args()

    started = time.monotonic()
    try:
        build(args.out, args.users, args.products, args.seed)
    except (OSError, sqlite3.Error) as e:
        print(f"gen_demo_db: {args.out}: {e}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    size_mb = os.path.getsize(args.out) / 1e6
    print(f"{args.out}: {args.users} users, {args.products} products (seed {args.seed}), "
          f"{size_mb:.1f} MB in {elapsed:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
