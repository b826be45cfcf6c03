.PHONY: e2e e2e-neovim

# End-to-end test of the VS Code extension in a real VS Code (code-server + Chromium):
# installs what it needs (apt + npm registries only), packages the .vsix, runs the test.
# The Neovim test (e2e-neovim) runs first.
e2e: e2e-neovim
	vscode-client/e2e/setup.sh
	cd vscode-client/e2e && node run.mjs

# The Neovim configuration of docs/editors.md in Debian's headless nvim (setup.sh installs
# the neovim package through apt-get when nvim is missing): a ghostline completion arrives
# through the protocol and CTRL-X CTRL-O, and the server ends with Neovim.
e2e-neovim:
	tests/e2e/neovim/setup.sh
	.venv/bin/python tests/e2e/neovim/run.py
