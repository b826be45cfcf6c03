-- Drives the ghostline language server through Neovim's built-in LSP client (0.7+), headless.
--
-- run.py starts `nvim --headless --clean -u NONE -n -c 'luafile ghostline_test.lua'` in a
-- workspace folder. This script loads the configuration that docs/editors.md documents,
-- opens a Python file, asks for a completion at the end of a partly typed line through the
-- protocol (textDocument/completion and textDocument/inlineCompletion) and then as a user
-- would (A, CTRL-X CTRL-O, Esc), and writes what it saw to a JSON file for run.py
-- to check. It only collects; the checks live in run.py.
--
-- Environment: GHOSTLINE_TEST_CONFIG (the documented configuration, a Lua file),
-- GHOSTLINE_TEST_FILE (the Python file), GHOSTLINE_TEST_LINE (1-based line to complete at
-- its end), GHOSTLINE_TEST_RESULT (the JSON written here), GHOSTLINE_TEST_EXIT (the server's
-- exit code and signal, written when it ends), GHOSTLINE_TEST_TIMEOUT_MS.
-- Neovim exits 0 once the result is written, 1 when a step failed or ran out of time.

local env = os.getenv
local deadline = vim.loop.now() + (tonumber(env('GHOSTLINE_TEST_TIMEOUT_MS')) or 60000)
local line = assert(tonumber(env('GHOSTLINE_TEST_LINE')), 'GHOSTLINE_TEST_LINE is not set')
local result = { step = 'start', messages = {} }
local finished = false

local function finish(err)
  if finished then
    return
  end
  finished = true
  result.error = err
  local out = assert(io.open(assert(env('GHOSTLINE_TEST_RESULT')), 'w'))
  out:write(vim.fn.json_encode(result))
  out:close()
  -- Quitting runs Neovim's own exit handler (shutdown, exit), as a user's :qa does.
  vim.cmd(err and 'cquit' or 'qall!')
end

-- Runs fn as the named step; an error or a timeout ends the test with the step's name.
local function step(name, fn)
  if finished then
    return
  end
  result.step = name
  local ok, err = xpcall(fn, debug.traceback)
  if not ok then
    finish(name .. ': ' .. tostring(err))
  end
end

local function wait_for(what, condition)
  if not vim.wait(math.max(deadline - vim.loop.now(), 1), condition, 20) then
    error('timed out waiting for ' .. what)
  end
end

-- What a user would see as messages; run.py fails on warnings and errors.
vim.lsp.handlers['window/showMessage'] = function(_, params)
  table.insert(result.messages, params)
end

-- Note the client the configuration starts, and how its server process ends (run.py reports
-- it). on_exit runs in a luv callback, where vim.fn is not allowed: plain io only.
local start_client, started = vim.lsp.start_client, nil
vim.lsp.start_client = function(config)
  config.on_exit = function(code, signal)
    local out = io.open(assert(env('GHOSTLINE_TEST_EXIT')), 'w')
    if out then
      out:write(string.format('%d %d\n', code, signal))
      out:close()
    end
  end
  started = start_client(config)
  return started
end

local client, typed, params

step('load the documented configuration', function()
  vim.cmd('filetype on')
  dofile(assert(env('GHOSTLINE_TEST_CONFIG')))
end)

step('open the Python file', function()
  vim.cmd('edit ' .. vim.fn.fnameescape(assert(env('GHOSTLINE_TEST_FILE'))))
  result.filetype = vim.bo.filetype
  if started == nil or not vim.lsp.buf_is_attached(0, started) then  -- e.g. no such server command
    error('the configuration attached no client to the buffer (Neovim\'s messages below)')
  end
  typed = vim.api.nvim_buf_get_lines(0, line - 1, line, true)[1]
  local _, utf16_column = vim.str_utfindex(typed)
  params = {
    textDocument = vim.lsp.util.make_text_document_params(),
    position = { line = line - 1, character = utf16_column },
  }
end)

step('start the server and wait until its model is ready', function()
  wait_for('a ghostline client on the buffer', function()
    for _, c in pairs(vim.lsp.buf_get_clients(0)) do
      if c.name == 'ghostline' and c.initialized then
        client = c
        return true
      end
    end
    return false
  end)
  result.server_pid = client.rpc.pid
  result.completion_provider = client.server_capabilities.completionProvider
  result.inline_completion_provider = client.server_capabilities.inlineCompletionProvider
  wait_for('ghostline/status "ready" (vim.g.ghostline_status)', function()
    local status = vim.g.ghostline_status
    return status ~= nil and (status.state == 'ready' or status.state == 'error')
  end)
  result.status = vim.g.ghostline_status
  if result.status.state ~= 'ready' then
    error('ghostline/status: ' .. vim.inspect(result.status))
  end
end)

step('textDocument/completion', function()
  local responses = vim.lsp.buf_request_sync(0, 'textDocument/completion', params,
    math.max(deadline - vim.loop.now(), 1))
  assert(responses, 'no answer in time')
  result.completion = responses[client.id]
end)

step('textDocument/inlineCompletion', function()
  -- Neovim 0.7 has no inline completion of its own; ask the server directly.
  local inline = vim.tbl_extend('force', params, { context = { triggerKind = 1 } })
  result.inline = client.request_sync('textDocument/inlineCompletion', inline,
    math.max(deadline - vim.loop.now(), 1), 0)
  assert(result.inline, 'no answer in time')
end)

-- As a user: append to the line, CTRL-X CTRL-O, wait for the completion, Esc. With the
-- default 'completeopt' the first item is already in the line when the menu opens, and Esc
-- keeps it. (Not CTRL-Y: it accepts only from a menu on screen, and headless Neovim has no
-- screen, so CTRL-Y would insert the character above the cursor instead.) The keys run once
-- this script has returned to Neovim's main loop; a timer follows them.
step('CTRL-X CTRL-O', function()
  vim.api.nvim_win_set_cursor(0, { line, 0 })
  vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('A<C-x><C-o>', true, false, true), 'nt', false)
  result.step = 'wait for the completion menu'
  vim.fn.timer_start(20, function(timer)
    if finished then
      vim.fn.timer_stop(timer)
      return
    end
    step(result.step, function()
      if vim.loop.now() > deadline then
        error('timed out')
      end
      if result.step == 'wait for the completion menu' then
        local items = vim.fn.complete_info({ 'items' }).items
        if #items > 0 then
          result.menu = items
          result.step = 'leave Insert mode'
          vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes('<Esc>', true, false, true), 'nt', false)
        end
      elseif vim.fn.mode() == 'n' then
        result.line_after = vim.api.nvim_buf_get_lines(0, line - 1, line, true)[1]
        vim.fn.timer_stop(timer)
        finish(nil)
      end
    end)
  end, { ['repeat'] = -1 })
end)
