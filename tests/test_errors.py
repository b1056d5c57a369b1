"""Optional dependencies: present, they import; missing, one line says which extra installs them."""

import json

import pytest

from digitrec.errors import DigitrecError, require


def test_require_imports_what_is_installed():
    assert require("json", "serve") is json


def test_require_names_the_extra_for_a_clone_and_for_an_installed_package():
    with pytest.raises(DigitrecError) as e:
        require("no_such_module_for_digitrec.sub", "serve")
    msg = str(e.value)
    assert "no_such_module_for_digitrec," in msg and "pip install -e '.[serve]'" in msg
    assert "pip install 'digitrec[serve]'" in msg and "\n" not in msg
