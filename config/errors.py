"""The one exception type whose message is meant for people, not for tracebacks.

The project's errors, where each lives, and what raises it:

* PunchlineError                      config/errors.py   an error a person can act on
  + SettingsError                     config/settings.py   a setting has a value we cannot use
  + StorageError                      bot/storage/connection.py   the database cannot be used
  + ExportError                       bot/export/rows.py   bad `ratings export` arguments
  + NoFrontEndError                   bot/serve.py   `serve` with no chat platform configured
  + TelegramStartError                bot/telegram/app.py   no / rejected token, API unreachable
  + DiscordStartError                 bot/discord/client.py   bad token, missing intent, offline
  + SetupPoolError                    bot/battles/pool.py   the battle setup file is unusable
  + LanguageCheckError                bot/core/language.py   the language model cannot be loaded
  + ModelLoadError                    model/types.py   the base model cannot be loaded
    - CTranslate2Error                model/backends/ct2.py   conversion or loading failed
    - OnnxBackendError                model/backends/onnx_errors.py   export, cache or session failed
      . OnnxExportError                 the export disagrees with transformers' logits
  + AdapterError                      model/types.py   adapter missing, corrupt, other base model
  + GenerationError                   model/types.py   this request got no punchline
    - InvalidSetup                      empty, too long, n out of range
    - WorkerBusy                        the queue is full: try again (raised at once)
    - DeadlineExceeded                  the request's deadline passed
    - WorkerClosed                      the worker is shutting down
  + DataError                         training/errors.py   a data file cannot be read
  + OutputExistsError                 training/errors.py   the output directory is not empty
  + TrainingError                     training/errors.py   a training run cannot go on
    - NotEnoughFeedback               training/errors.py   too few preference examples to align

The command line prints a PunchlineError as one line and exits 2 (`bot.cli`); the bot turns the
ones that reach it into a friendly chat reply, never a traceback.
"""


class PunchlineError(Exception):
    """An error the user can act on; its message is one line meant for people."""
