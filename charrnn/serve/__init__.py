"""`charrnn serve`: a trained run behind HTTP and a web page, every request a set of streams in
one batched compiled loop.

Needs the `serve` extra (`pip install 'charrnn[serve]'`: Starlette and uvicorn). Modules:
`engine` (the batching scheduler, TensorFlow only), `limits` (what a request may ask for),
`app` (the Starlette routes), `server` (start-up, binding, signals), `command` (the click command),
`page.html` (the page at GET /).
"""
