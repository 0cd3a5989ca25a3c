"""What `%load_ext libleak` gives a notebook, run here in IPython's own shell so it works from a terminal:
python3 examples/notebook_leak_check.py.  In Jupyter, type the CELLS below into cells of their own."""

from IPython.core.interactiveshell import InteractiveShell

CELLS = [
    "%load_ext libleak",
    # A request handler with a planted leak: every call keeps its session in a module-level list.
    "class Session:\n"
    "    def __init__(self, user):\n"
    "        self.user = user\n"
    "        self.payload = bytearray(2048)\n"
    "SESSIONS = []\n"
    "def handle_request(user):\n"
    "    session = Session(user)\n"
    "    SESSIONS.append(session)\n"
    "    return len(session.payload)",
    # The leak check: the cell runs 2 + 6 times; Session and bytearray grow by one each run.
    "%%leak_check --runs 6 --warmup 2 --trace --why\nhandle_request('ada')",
    # A cell that allocates but keeps nothing: no leak.
    "%%leak_check --runs 6 --warmup 2\nhandled = [handle_request.__name__ for _ in range(100)]",
    # Why is this session alive?  (In a notebook the paths are drawn as a picture.)
    "%why_alive SESSIONS[-1]",
]

if __name__ == "__main__":
    shell = InteractiveShell.instance()
    for cell in CELLS:
        print(">>> " + cell.replace("\n", "\n... "))
        shell.run_cell(cell)
