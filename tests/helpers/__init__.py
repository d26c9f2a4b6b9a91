"""What the tests share: tiny model folders (``models``, ``images``, ``audio``), a live server
(``server``) and numeric checks (``numbers``). Tests import from here, never from conftest or from
one another."""
