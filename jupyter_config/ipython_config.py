# agentnb in every notebook: load the extension in each IPython kernel (and
# terminal IPython) that uses this profile, so %agent and %%chat work without
# %load_ext agentnb. Loading is instant: nothing heavy is imported and no store
# is opened until a magic is first used.
#
# Put these lines in ~/.ipython/profile_default/ipython_config.py (see
# jupyter_config/README.md); the commented settings are optional.

c = get_config()  # noqa: F821 - provided by IPython when it reads this file

# append, so that extensions loaded by other lines of your config stay loaded
c.InteractiveShellApp.extensions.append("agentnb")

# Model of agents created with %agent create and no --model (default: the store's,
# "offline" unless AGENTNB_DEFAULT_MODEL or ~/.agentnb/config.toml says otherwise).
# c.AgentMagics.default_model = "openai:gpt-4o-mini"

# Agent made current in each new notebook, continuing its latest session.
# c.AgentMagics.default_agent = "helper"

# A store other than the default (~/.agentnb/agentnb.duckdb, or AGENTNB_HOME).
# c.AgentMagics.database_url = "duckdb:////srv/team/agentnb.duckdb"

# How many messages %agent history shows (0: all), and display updates per
# second while a reply streams.
# c.AgentMagics.history_limit = 50
# c.AgentMagics.stream_rate = 20.0

# How %%chat draws a turn: "rich" (one HTML output updated in place), "text"
# (printed as it streams), or "auto" (rich in a Jupyter kernel, text elsewhere).
# c.AgentMagics.chat_display = "auto"
