"""Where the tests find the real LJ Speech clips."""

import os

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def ljspeech_mini_dir():
    """`$PWAVENET_TEST_DATA`, else `../shared/data/ljspeech-mini` beside the checkout.

    Raises (rather than skipping) when the data is missing: a test run without its data
    must fail loudly, not pass by testing nothing.
    """
    path = os.environ.get("PWAVENET_TEST_DATA") or os.path.join(
        os.path.dirname(_REPO), "shared", "data", "ljspeech-mini"
    )
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"Test data not found at {path}: put the shared folder beside the checkout or set "
            "PWAVENET_TEST_DATA to an LJ Speech-layout folder."
        )
    return path
