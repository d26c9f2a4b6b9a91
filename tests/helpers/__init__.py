"""What the tests share: tiny model folders (``models``, ``images``, ``audio``), a live server
(``server``), numeric checks (``numbers``) and Cranfield text (``cranfield``). Tests import from here,
never from conftest or from one another."""
