.PHONY: e2e

# End-to-end test of the VS Code extension in a real VS Code (code-server + Chromium):
# installs what it needs (apt + npm registries only), packages the .vsix, runs the test.
e2e:
	vscode-client/e2e/setup.sh
	cd vscode-client/e2e && node run.mjs
