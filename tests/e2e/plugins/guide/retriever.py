# The user guide, "Plugin Extension" > "Inheritance": the first example.
from gofer.decorators import *
from gofer.agent.plugin import Plugin

# import Dog from animals plugin

animals = Plugin.find('animals')
Dog = animals['Dog']

class Retriever(Dog):
   @remote(secret='wagf')
   def fetch(self):
       pass
