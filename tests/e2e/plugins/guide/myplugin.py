# The user guide, "Plugin Extension" > "Extending": plugin myplugin, using the API.
from gofer.decorators import *
from gofer.agent.plugin import Plugin

animals = Plugin.find('animals')
plugin = Plugin.find(__name__)

# just import Dog
plugin += animals['Dog']

# import everything
plugin += animals
