# The user guide, "Plugin Extension" > "Inheritance": the second example.
from gofer.decorators import *
from gofer.agent.plugin import Plugin

# import Dog from animals plugin

animals = Plugin.find('animals')
Dog = animals['Dog']

class Retriever(Dog):

   @remote(secret='wag')
   def bark(self):
       Dog.bark(self)

   @remote(secret='wag')
   def fetch(self):
       pass
